# INERT test sample for pyward's static analysis: never run it. Modelled on marshal-loaded bytecode executed at import.
# Documented: GuardDog v3 threat-runtime-obfuscation-import-exec (exec(marshal.loads(...)))
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import marshal, base64
exec(marshal.loads(base64.b64decode('42luZXJ0LWJ5dGVjb2Rl')))
