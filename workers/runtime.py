"""What a worker process holds for its lifetime: created once, after the process starts
(never inherited across a fork), and handed to each task."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from functools import lru_cache

from aigc.catalog import Catalog, build_catalog
from aigc.connections import database_engine
from aigc.content_credentials import ContentCredentials, Credentials
from aigc.labels.keys import label_signer
from aigc.labels.label import LabelSigner
from aigc.moderation import RuleSet
from aigc.settings import Settings, get_settings
from aigc.storage import ArtifactStore, open_store
from db.job_store import JobStore, SqlJobStore
from db.session import make_session_factory
from workers.heartbeat import Heartbeat
from workers.model_cache import ModelCache
from workers.moderation import RulesCache, classifier, file_rules


@dataclass
class WorkerRuntime:
    settings: Settings
    # The jobs table, as the worker uses it (a fake in the unit tests).
    jobs: JobStore
    store: ArtifactStore
    catalog: Catalog
    models: ModelCache
    heartbeat: Heartbeat
    # Signs the label written into every artifact.
    labels: LabelSigner
    # Recorded on each job it runs; also guards the final UPDATE (only the claimant finishes).
    worker_name: str
    # The rules generated text is checked against before it is stored.
    moderation: RulesCache = field(default_factory=lambda: RulesCache(RuleSet(())))
    # Signs the C2PA manifest of each PNG and WAV (none in the unit tests' fakes).
    credentials: ContentCredentials | None = None


def create_runtime(settings: Settings) -> WorkerRuntime:
    # No pre-ping: every statement a worker runs is retried on a connection error.
    jobs = SqlJobStore(
        make_session_factory(database_engine(settings, pre_ping=False)),
        artifact_retention_s=settings.artifact_retention_s,
    )
    worker_name = f"{socket.gethostname()}:{os.getpid()}"
    return WorkerRuntime(
        settings=settings,
        jobs=jobs,
        store=open_store(settings),
        catalog=build_catalog(settings),
        models=ModelCache(settings.model_dir, settings.model_cache_size),
        heartbeat=Heartbeat(jobs, worker_name, settings.lease_s),
        labels=label_signer(settings),
        worker_name=worker_name,
        moderation=RulesCache(file_rules(settings), classifier(settings)),
        credentials=ContentCredentials(
            Credentials.from_settings(settings), settings.label_producer
        ),
    )


@lru_cache(maxsize=1)
def get_runtime() -> WorkerRuntime:
    return create_runtime(get_settings())
