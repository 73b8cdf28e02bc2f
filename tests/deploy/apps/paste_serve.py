"""What pserve does: load the app and the server of an ini file, run them.

    python paste_serve.py config.ini
"""
import sys

from paste.deploy import loadapp, loadserver

if __name__ == "__main__":
    config = "config:" + sys.argv[1]
    server = loadserver(config)
    app = loadapp(config)
    server(app)
