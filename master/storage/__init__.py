"""Storage's decisions, pure (imports nothing of the store or above it; objects in, decisions out).

`volumes.py` reads volumes, claims and classes and matches them (Kubernetes' binder rules and a
volume's node affinity); `provision.py` says what a class's provisioner makes for a claim, and the
host commands that make and remove its directory; `sync.py` is the volumes controller's round;
`needs.py` is what the scheduler's VolumeBinding filter asks of a pod's claims.
"""
