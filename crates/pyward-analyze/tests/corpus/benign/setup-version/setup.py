# Inert benign sample: the common read-version-with-exec setup.py idiom.
from setuptools import setup, find_packages
about = {}
with open('pkg/__version__.py') as f:
    exec(f.read(), about)
setup(name='pkg', version=about['__version__'], packages=find_packages())
