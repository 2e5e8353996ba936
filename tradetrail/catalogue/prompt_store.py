"""The prompt template store a run reads: templates with versions. Saving validates (syntax, known variables,
allowed filters, the limits of ``prompts/limits.py``; it never evaluates the template) and adds a version;
the text of an old version never changes, so every analysis can point at exactly what it sent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from tradetrail.db.models import PromptTemplate, PromptTemplateVersion
from tradetrail.prompts.templates import (
    DEFAULT_TEMPLATES,
    PromptTemplateError,
    default_body,
    validate_template,
)


@dataclass(frozen=True)
class TemplateRef:
    template_id: int
    name: str
    version: int
    body: str
    sha256: str

    def ref(self) -> dict:
        return {"template_id": self.template_id, "name": self.name, "version": self.version,
                "sha256": self.sha256}


def save_template(session: Session, name: str, body: str, *, user_id: int | None,
                  description: str = "") -> TemplateRef:
    """Create the template or add a version (unchanged text adds nothing). Raises PromptTemplateError."""
    validate_template(body)
    tpl = session.scalar(select(PromptTemplate).where(PromptTemplate.user_id.is_(None) if user_id is None
                                                      else PromptTemplate.user_id == user_id,
                                                      PromptTemplate.name == name))
    digest = hashlib.sha256(body.encode()).hexdigest()
    if tpl is None:
        tpl = PromptTemplate(user_id=user_id, name=name, description=description, latest_version=0)
        session.add(tpl)
        session.flush()
    else:
        latest = _version(session, tpl.id, tpl.latest_version)
        if latest is not None and latest.sha256 == digest:
            return TemplateRef(tpl.id, name, latest.version, latest.body, latest.sha256)
    tpl.latest_version += 1
    session.add(PromptTemplateVersion(template_id=tpl.id, version=tpl.latest_version, body=body, sha256=digest))
    session.commit()
    return TemplateRef(tpl.id, name, tpl.latest_version, body, digest)


def _version(session: Session, template_id: int, version: int) -> PromptTemplateVersion | None:
    return session.scalar(select(PromptTemplateVersion).where(
        PromptTemplateVersion.template_id == template_id, PromptTemplateVersion.version == version))


def latest_template(session: Session, name: str, *, user_id: int) -> TemplateRef:
    """The user's own template of that name, else the built-in one; its latest version."""
    return latest_templates(session, [name], user_id=user_id)[name]


_LATEST = (select(PromptTemplate.id, PromptTemplate.name, PromptTemplate.user_id, PromptTemplate.latest_version,
                  PromptTemplateVersion.version, PromptTemplateVersion.body, PromptTemplateVersion.sha256)
           .outerjoin(PromptTemplateVersion, (PromptTemplateVersion.template_id == PromptTemplate.id)
                      & (PromptTemplateVersion.version == PromptTemplate.latest_version))
           .where(PromptTemplate.name.in_(bindparam("names", expanding=True)),
                  (PromptTemplate.user_id == bindparam("user")) | PromptTemplate.user_id.is_(None)))  # built once


def latest_templates(session: Session, names: list[str], *, user_id: int) -> dict[str, TemplateRef]:
    """:func:`latest_template` for several names in one query (a run needs three on every execution)."""
    rows = session.execute(_LATEST, {"names": sorted(set(names)), "user": user_id}).all()
    out = {}
    for name in names:
        candidates = [r for r in rows if r.name == name]
        if not candidates:
            raise PromptTemplateError(f"no prompt template named {name!r}")
        row = next((r for r in candidates if r.user_id == user_id), candidates[0])
        if row.version is None:
            raise PromptTemplateError(f"prompt template {name!r} has no version {row.latest_version}")
        out[name] = TemplateRef(row.id, row.name, row.version, row.body, row.sha256)
    return out


def template_version(session: Session, template_id: int, version: int) -> TemplateRef:
    """One exact version (what an analysis recorded), for replays."""
    tpl = session.get(PromptTemplate, template_id)
    ver = _version(session, template_id, version) if tpl is not None else None
    if ver is None:
        raise PromptTemplateError(f"prompt template {template_id} version {version} no longer exists")
    return TemplateRef(tpl.id, tpl.name, ver.version, ver.body, ver.sha256)


def seed_default_templates(session: Session) -> list[TemplateRef]:
    """Install (or update to) the built-in templates; idempotent."""
    return [save_template(session, name, default_body(name), user_id=None, description=desc)
            for name, desc in DEFAULT_TEMPLATES.items()]
