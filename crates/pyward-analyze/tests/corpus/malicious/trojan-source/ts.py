# INERT test sample for pyward's static analysis: never run it. Modelled on Trojan Source (bidirectional override characters hiding logic).
# Documented: https://trojansource.codes/ (CVE-2021-42574)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
access_level = 'user'
if access_level != 'none‮ ⁦# Check if admin⁩ ⁦':
    os.system('id')
