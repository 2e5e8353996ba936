"""Prompt templates with versions. Saving validates (syntax, known variables) and adds a version; the
text of an old version never changes, so every analysis can point at exactly what it sent."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
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
    rows = session.scalars(select(PromptTemplate).where(
        PromptTemplate.name == name,
        (PromptTemplate.user_id == user_id) | PromptTemplate.user_id.is_(None))).all()
    if not rows:
        raise PromptTemplateError(f"no prompt template named {name!r}")
    tpl = next((r for r in rows if r.user_id == user_id), rows[0])
    ver = _version(session, tpl.id, tpl.latest_version)
    if ver is None:
        raise PromptTemplateError(f"prompt template {name!r} has no version {tpl.latest_version}")
    return TemplateRef(tpl.id, tpl.name, ver.version, ver.body, ver.sha256)


def seed_default_templates(session: Session) -> list[TemplateRef]:
    """Install (or update to) the built-in templates; idempotent."""
    return [save_template(session, name, default_body(name), user_id=None, description=desc)
            for name, desc in DEFAULT_TEMPLATES.items()]
