"""The database dependency: one MongoDB database per service."""
import logging

import pymongo
from pymongo.errors import ConnectionFailure, DuplicateKeyError
from nameko.extensions import DependencyProvider

from .inbox import inbox_indexes

log = logging.getLogger(__name__)


def database_name(config, service_name):
    """``MONGO_DATABASES: {members: ...}`` overrides ``<prefix><service>``."""
    names = config.get("MONGO_DATABASES") or {}
    return names.get(service_name) or f"{config.get('MONGO_DB_PREFIX', 'zhzx_')}{service_name}"


# The driver's errors that mean "the database cannot be reached now" (server
# selection timed out, connection refused or reset, network timeout): a caller
# gets a 503 with Retry-After, an event handler retries without counting it.
UNAVAILABLE = (ConnectionFailure,)


def connect(config):
    """A client that notices a lost or returning server within about a
    second (``MONGO_HEARTBEAT_MS``), so requests fail fast while it is gone."""
    return pymongo.MongoClient(
        config["MONGO_URI"], serverSelectionTimeoutMS=int(config.get("MONGO_TIMEOUT_MS", 3000)),
        heartbeatFrequencyMS=int(config.get("MONGO_HEARTBEAT_MS", 1000)),
        tz_aware=False, uuidRepresentation="standard")


def reachable(client):
    """False when the driver already knows no server can take writes: answer
    at once instead of waiting for the server-selection timeout."""
    return client.topology_description.has_writable_server()


def unavailable_error(exc):
    """True for an error (or its cause) that means the database is down."""
    while exc is not None:
        if isinstance(exc, UNAVAILABLE):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class Mongo(DependencyProvider):
    """Gives workers the service's ``pymongo.Database``; creates indexes at start.

    ``indexes`` maps a collection to a list of ``(keys, options)``; ``retired``
    maps a collection to the keys of indexes an earlier version created, which
    are dropped at start (by their keys: servers name indexes differently).
    Business keys should be ``_id``: the embedded wire server scans whole
    collections for writes filtered on secondary indexes.
    An index that a frequent query does not need can make that query slower
    there (a filter on two indexed fields is slower than on one).
    """

    def __init__(self, indexes=None, retired=None):
        self.indexes = indexes or {}
        self.retired = retired or {}   # collection -> keys of indexes to drop

    def setup(self):
        self.client = connect(self.container.config)
        self.db = self.client[database_name(self.container.config,
                                            self.container.service_name)]

    def start(self):
        for collection, retired in self.retired.items():
            retired = [list(keys) for keys in retired]
            for ix in self.db[collection].list_indexes():
                if list(ix["key"].items()) in retired:
                    self.db[collection].drop_index(ix["name"])
        for collection, specs in self.indexes.items():
            for keys, options in specs:
                self.db[collection].create_index(keys, **options)
        for keys, options in inbox_indexes(self.container.config):
            self.db["inbox"].create_index(keys, **options)

    def stop(self):
        self.client.close()

    def kill(self):
        self.client.close()

    def get_dependency(self, worker_ctx):
        return self.db


def ping(db):
    if not reachable(db.client):
        raise ConnectionFailure("no reachable database server")
    db.client.admin.command("ping")


def find_page(collection, query, limit, after=None, projection=None):
    """``limit + 1`` documents ordered by ``_id`` after the cursor key."""
    if after is not None:
        query = {"$and": [query, {"_id": {"$gt": after}}]} if query else {"_id": {"$gt": after}}
    return list(collection.find(query, projection).sort("_id", 1).limit(limit + 1))


def iterate(collection, query=None, projection=None, batch=500):
    """Every document matching ``query``, in ``_id`` order, ``batch`` at a time
    (a cursor kept open for long is not needed)."""
    after = None
    while True:
        docs = find_page(collection, dict(query or {}), batch, after, projection)
        yield from docs[:batch]
        if len(docs) <= batch:
            return
        after = docs[batch - 1]["_id"]


def keep_latest(collection, doc_id, seq, fields):
    """Store ``fields`` as ``doc_id`` unless a newer ``seq`` is stored."""
    try:
        collection.insert_one(dict(fields, _id=doc_id, seq=seq))
    except DuplicateKeyError:
        collection.update_one({"_id": doc_id, "seq": {"$lt": seq}},
                              {"$set": dict(fields, seq=seq)})
