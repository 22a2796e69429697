from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_NONE: _ClassVar[Status]
    STATUS_IN_PROGRESS: _ClassVar[Status]
    STATUS_DONE: _ClassVar[Status]
    STATUS_FAILED: _ClassVar[Status]
STATUS_NONE: Status
STATUS_IN_PROGRESS: Status
STATUS_DONE: Status
STATUS_FAILED: Status

class QueryWriteStatusRequest(_message.Message):
    __slots__ = ("project", "filename", "sha256", "size")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    project: str
    filename: str
    sha256: str
    size: int
    def __init__(self, project: _Optional[str] = ..., filename: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ...) -> None: ...

class QueryWriteStatusResponse(_message.Message):
    __slots__ = ("committed_size", "complete", "in_progress")
    COMMITTED_SIZE_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    committed_size: int
    complete: bool
    in_progress: bool
    def __init__(self, committed_size: _Optional[int] = ..., complete: _Optional[bool] = ..., in_progress: _Optional[bool] = ...) -> None: ...

class FileRef(_message.Message):
    __slots__ = ("filename", "sha256")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    filename: str
    sha256: str
    def __init__(self, filename: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class CheckFilesRequest(_message.Message):
    __slots__ = ("project", "files")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    project: str
    files: _containers.RepeatedCompositeFieldContainer[FileRef]
    def __init__(self, project: _Optional[str] = ..., files: _Optional[_Iterable[_Union[FileRef, _Mapping]]] = ...) -> None: ...

class FileCheck(_message.Message):
    __slots__ = ("filename", "done", "status", "stage", "sha256")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    filename: str
    done: bool
    status: Status
    stage: str
    sha256: str
    def __init__(self, filename: _Optional[str] = ..., done: _Optional[bool] = ..., status: _Optional[_Union[Status, str]] = ..., stage: _Optional[str] = ..., sha256: _Optional[str] = ...) -> None: ...

class CheckFilesResponse(_message.Message):
    __slots__ = ("files",)
    FILES_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[FileCheck]
    def __init__(self, files: _Optional[_Iterable[_Union[FileCheck, _Mapping]]] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("filename", "project", "sha256", "size", "convert", "write_offset", "resume")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    CONVERT_FIELD_NUMBER: _ClassVar[int]
    WRITE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RESUME_FIELD_NUMBER: _ClassVar[int]
    filename: str
    project: str
    sha256: str
    size: int
    convert: bool
    write_offset: int
    resume: bool
    def __init__(self, filename: _Optional[str] = ..., project: _Optional[str] = ..., sha256: _Optional[str] = ..., size: _Optional[int] = ..., convert: _Optional[bool] = ..., write_offset: _Optional[int] = ..., resume: _Optional[bool] = ...) -> None: ...

class UploadRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadResponse(_message.Message):
    __slots__ = ("file", "already_done", "already_in_progress")
    FILE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_DONE_FIELD_NUMBER: _ClassVar[int]
    ALREADY_IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    file: FileStatus
    already_done: bool
    already_in_progress: bool
    def __init__(self, file: _Optional[_Union[FileStatus, _Mapping]] = ..., already_done: _Optional[bool] = ..., already_in_progress: _Optional[bool] = ...) -> None: ...

class GetFileRequest(_message.Message):
    __slots__ = ("project", "filename")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    project: str
    filename: str
    def __init__(self, project: _Optional[str] = ..., filename: _Optional[str] = ...) -> None: ...

class ListFilesRequest(_message.Message):
    __slots__ = ("project", "collector", "mrt_type", "status", "file_time_from", "file_time_to", "page_size", "page_token")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    MRT_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILE_TIME_FROM_FIELD_NUMBER: _ClassVar[int]
    FILE_TIME_TO_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    project: str
    collector: str
    mrt_type: str
    status: str
    file_time_from: int
    file_time_to: int
    page_size: int
    page_token: str
    def __init__(self, project: _Optional[str] = ..., collector: _Optional[str] = ..., mrt_type: _Optional[str] = ..., status: _Optional[str] = ..., file_time_from: _Optional[int] = ..., file_time_to: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFilesResponse(_message.Message):
    __slots__ = ("files", "next_page_token")
    FILES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    files: _containers.RepeatedCompositeFieldContainer[FileStatus]
    next_page_token: str
    def __init__(self, files: _Optional[_Iterable[_Union[FileStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class FileStatus(_message.Message):
    __slots__ = ("project", "filename", "status", "stage", "collector", "mrt_type", "content_type", "content_encoding", "size", "sha256", "file_time", "created_at", "updated_at", "bytes_received", "raw_uri", "avro_uris", "records_read", "rows_by_type", "skipped_by_reason", "first_errors", "warehouse_tables", "load_id", "error", "attempts")
    class RowsByTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class SkippedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    COLLECTOR_FIELD_NUMBER: _ClassVar[int]
    MRT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    FILE_TIME_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    BYTES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    RAW_URI_FIELD_NUMBER: _ClassVar[int]
    AVRO_URIS_FIELD_NUMBER: _ClassVar[int]
    RECORDS_READ_FIELD_NUMBER: _ClassVar[int]
    ROWS_BY_TYPE_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    FIRST_ERRORS_FIELD_NUMBER: _ClassVar[int]
    WAREHOUSE_TABLES_FIELD_NUMBER: _ClassVar[int]
    LOAD_ID_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    project: str
    filename: str
    status: Status
    stage: str
    collector: str
    mrt_type: str
    content_type: str
    content_encoding: str
    size: int
    sha256: str
    file_time: int
    created_at: float
    updated_at: float
    bytes_received: int
    raw_uri: str
    avro_uris: _containers.RepeatedScalarFieldContainer[str]
    records_read: int
    rows_by_type: _containers.ScalarMap[str, int]
    skipped_by_reason: _containers.ScalarMap[str, int]
    first_errors: _containers.RepeatedScalarFieldContainer[str]
    warehouse_tables: _containers.RepeatedScalarFieldContainer[str]
    load_id: str
    error: str
    attempts: int
    def __init__(self, project: _Optional[str] = ..., filename: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., stage: _Optional[str] = ..., collector: _Optional[str] = ..., mrt_type: _Optional[str] = ..., content_type: _Optional[str] = ..., content_encoding: _Optional[str] = ..., size: _Optional[int] = ..., sha256: _Optional[str] = ..., file_time: _Optional[int] = ..., created_at: _Optional[float] = ..., updated_at: _Optional[float] = ..., bytes_received: _Optional[int] = ..., raw_uri: _Optional[str] = ..., avro_uris: _Optional[_Iterable[str]] = ..., records_read: _Optional[int] = ..., rows_by_type: _Optional[_Mapping[str, int]] = ..., skipped_by_reason: _Optional[_Mapping[str, int]] = ..., first_errors: _Optional[_Iterable[str]] = ..., warehouse_tables: _Optional[_Iterable[str]] = ..., load_id: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ...) -> None: ...
