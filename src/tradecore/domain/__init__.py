"""The pure domain: decisions as functions from state and input to new state and commands.

Imports the standard library and attrs only. No clock reads, no I/O, no logging.
"""
