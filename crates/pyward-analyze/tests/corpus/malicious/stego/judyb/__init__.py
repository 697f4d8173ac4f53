# INERT test sample for pyward's static analysis: never run it. Modelled on steganography loaders (code hidden in an image, executed).
# Documented: https://research.checkpoint.com/2022/ (apicolor / judyb)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
from judyb import lsb
exec(lsb.reveal('logo.png'))
