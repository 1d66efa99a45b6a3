"""The horizontal pod autoscaler's decisions, pure: metrics and objects in, replica counts out.

Kubernetes' replica calculator (`replicas.py`), what each metric proposes (`measure.py`), its
behavior rules (`behavior.py`), one autoscaler's round (`decide.py`), over the metrics the agents
report (`metrics.py`: what is read, never how it is kept). Nothing here imports the store:
master/controllers/autoscaler.py reads and writes.
"""
