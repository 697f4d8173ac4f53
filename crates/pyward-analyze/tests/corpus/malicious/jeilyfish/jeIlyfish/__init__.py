# INERT test sample for pyward's static analysis: never run it. Modelled on jeIlyfish.
# Documented: see _jellyfish.py
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
from ._jellyfish import *
