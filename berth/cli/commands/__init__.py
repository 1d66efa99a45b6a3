"""The CLI's commands, one group a file, as kubectl's cmd/ tree: main.py gathers them."""
