"""How the ursa command tells a user about a mistake: ConfigError, whose
str() is the one line printed, the exit status that goes with it, and the
"did you mean" hint for a misspelt name.

Every module that checks what a user gave (the settings, the config file,
the app, the addresses, PasteDeploy's [server] section) raises ConfigError;
cli.main() and paste.run_server() turn it into `ursa: error: ...` and exit
status 2, before anything is bound.
"""
import difflib

# A mistake the user must fix (a bad option value, an app that does not
# load, an address in use) exits with this, as argparse's usage errors do.
EXIT_CONFIG_ERROR = 2


class ConfigError(Exception):
    """A mistake in the command line, config file or app; str() is the one-line message."""


def did_you_mean(word, choices):
    """' (did you mean 'x'?)' for the choice closest to `word`, or ''."""
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
