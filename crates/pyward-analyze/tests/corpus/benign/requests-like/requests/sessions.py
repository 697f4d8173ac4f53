# Inert benign sample: requests-style session code.
"""A small HTTP library (inert copy of requests-style code)."""
import os
import sys
import socket
from urllib.parse import urlparse
from .adapters import HTTPAdapter

DEFAULT_TIMEOUT = 30

class Session:
    def __init__(self):
        self.headers = {'User-Agent': 'python-requests/2.32'}
        self.proxies = {k: v for k, v in os.environ.items() if k.endswith('_proxy')}
        self.trust_env = True

    def request(self, method, url, **kw):
        parsed = urlparse(url)
        if parsed.scheme not in ('http', 'https'):
            raise ValueError('bad scheme %r' % url)
        conn = socket.create_connection((parsed.hostname, parsed.port or 443), DEFAULT_TIMEOUT)
        return conn

    def get(self, url, **kw):
        return self.request('GET', url, **kw)

def get_netrc_auth(url):
    netrc_path = os.path.expanduser('~/.netrc')
    if not os.path.exists(netrc_path):
        return None
    return None

def where():
    return os.path.join(os.path.dirname(__file__), 'cacert.pem')
