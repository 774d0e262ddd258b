__version__ = '0.1.0'


def digit_version(version_str: str) -> tuple:
    """Turn '1.2.3' into (1, 2, 3) for comparisons."""
    return tuple(int(x) for x in version_str.split('.') if x.isdigit())
