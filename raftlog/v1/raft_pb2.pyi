from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_NORMAL: _ClassVar[EntryKind]

class RaftMessageType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RAFT_MESSAGE_TYPE_UNSPECIFIED: _ClassVar[RaftMessageType]
    APPEND: _ClassVar[RaftMessageType]
    APPEND_RESPONSE: _ClassVar[RaftMessageType]
    VOTE: _ClassVar[RaftMessageType]
    VOTE_RESPONSE: _ClassVar[RaftMessageType]
    PRE_VOTE: _ClassVar[RaftMessageType]
    PRE_VOTE_RESPONSE: _ClassVar[RaftMessageType]
    HEARTBEAT: _ClassVar[RaftMessageType]
    HEARTBEAT_RESPONSE: _ClassVar[RaftMessageType]
    SNAPSHOT: _ClassVar[RaftMessageType]
    TIMEOUT_NOW: _ClassVar[RaftMessageType]
    READ_INDEX: _ClassVar[RaftMessageType]
    READ_INDEX_RESPONSE: _ClassVar[RaftMessageType]
ENTRY_KIND_NORMAL: EntryKind
RAFT_MESSAGE_TYPE_UNSPECIFIED: RaftMessageType
APPEND: RaftMessageType
APPEND_RESPONSE: RaftMessageType
VOTE: RaftMessageType
VOTE_RESPONSE: RaftMessageType
PRE_VOTE: RaftMessageType
PRE_VOTE_RESPONSE: RaftMessageType
HEARTBEAT: RaftMessageType
HEARTBEAT_RESPONSE: RaftMessageType
SNAPSHOT: RaftMessageType
TIMEOUT_NOW: RaftMessageType
READ_INDEX: RaftMessageType
READ_INDEX_RESPONSE: RaftMessageType

class Entry(_message.Message):
    __slots__ = ("term", "index", "data", "kind")
    TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    term: int
    index: int
    data: bytes
    kind: EntryKind
    def __init__(self, term: _Optional[int] = ..., index: _Optional[int] = ..., data: _Optional[bytes] = ..., kind: _Optional[_Union[EntryKind, str]] = ...) -> None: ...

class SnapshotMeta(_message.Message):
    __slots__ = ("index", "term", "voters")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    index: int
    term: int
    voters: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, index: _Optional[int] = ..., term: _Optional[int] = ..., voters: _Optional[_Iterable[int]] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("meta", "data")
    META_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    meta: SnapshotMeta
    data: bytes
    def __init__(self, meta: _Optional[_Union[SnapshotMeta, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class RaftMessage(_message.Message):
    __slots__ = ("type", "to", "sender", "term", "log_term", "index", "entries", "commit", "reject", "reject_hint", "snapshot", "context")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    LOG_TERM_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    REJECT_HINT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    type: RaftMessageType
    to: int
    sender: int
    term: int
    log_term: int
    index: int
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    commit: int
    reject: bool
    reject_hint: int
    snapshot: Snapshot
    context: bytes
    def __init__(self, type: _Optional[_Union[RaftMessageType, str]] = ..., to: _Optional[int] = ..., sender: _Optional[int] = ..., term: _Optional[int] = ..., log_term: _Optional[int] = ..., index: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., commit: _Optional[int] = ..., reject: _Optional[bool] = ..., reject_hint: _Optional[int] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., context: _Optional[bytes] = ...) -> None: ...

class StepRequest(_message.Message):
    __slots__ = ("cluster_id", "sender", "messages")
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    sender: int
    messages: _containers.RepeatedCompositeFieldContainer[RaftMessage]
    def __init__(self, cluster_id: _Optional[str] = ..., sender: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[RaftMessage, _Mapping]]] = ...) -> None: ...

class StepResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
