"""Install mmreid_rcl; metadata lives in setup.cfg."""
from setuptools import setup

if __name__ == '__main__':
    setup()
