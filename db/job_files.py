"""Files handed from composing workers to the bot (``JobFile``): put, take, sweep."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from .models import JobFile, utcnow
from .queries import SessionFactory, _transaction

__all__ = ('put_job_files', 'take_job_files', 'sweep_job_files')


async def put_job_files(db: SessionFactory, job_id: str, files: dict[str, bytes]) -> None:
    """Store a job's files (a retried job overwrites what its first try stored)."""

    async def work(session: AsyncSession) -> None:
        await session.execute(delete(JobFile).where(JobFile.job_id == job_id))
        session.add_all(JobFile(job_id=job_id, format=fmt, data=data) for fmt, data in files.items())

    await _transaction(db, work)


async def take_job_files(db: SessionFactory, job_id: str) -> dict[str, bytes]:
    """A job's files, removed from the table in the same transaction (format -> bytes)."""

    async def work(session: AsyncSession) -> dict[str, bytes]:
        rows = (await session.execute(select(JobFile).where(JobFile.job_id == job_id))).scalars().all()
        files = {row.format: row.data for row in rows}
        await session.execute(delete(JobFile).where(JobFile.job_id == job_id))
        return files

    return await _transaction(db, work)


async def sweep_job_files(db: SessionFactory, older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Delete files nobody took (their bot stopped waiting); returns how many rows went."""

    async def work(session: AsyncSession) -> int:
        result = await session.execute(delete(JobFile).where(JobFile.created_at < utcnow() - older_than))
        return result.rowcount or 0

    return await _transaction(db, work)
