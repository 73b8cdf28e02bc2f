"""bjoern 4's gunicorn worker path, so that a deployment moving from bjoern
changes only the package name:

    gunicorn -k ursa.gworker.BjoernWorker app:app
"""
from .gunicorn import Worker

BjoernWorker = Worker

__all__ = ["BjoernWorker"]
