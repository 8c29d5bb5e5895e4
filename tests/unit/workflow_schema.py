"""The workflow schema the payload and workflow-input unit tests read: the emulator's default workflow."""

from __future__ import annotations


def schema_entry(input_id: str, display_name: str, type_: str, nullable: bool, allowed: list[str] | None = None):
    entry = {
        "id": input_id,
        "variable_name": f"workflow_input_{input_id}",
        "display_name": display_name,
        "type": type_,
        "is_nullable": nullable,
    }
    if allowed is not None:
        entry["tags"] = [{"variable_name": "allowed_file_types", "value": allowed}]
    return entry


SUPPORTING_TYPES = ["PDF", "DOCX", "PNG", "CSV", "TXT"]
# The jobPayloadSchema of the emulator's bundled default workflow.
SCHEMA = {
    f"workflow_input_{e['id']}": e
    for e in (
        schema_entry("we4tej0ly", "Customer Name", "str", False),
        schema_entry("a0hk6ujuo", "Threshold", "float", False),
        schema_entry("h69vx5i4a", "Invoice", "file", False, ["PDF", "PNG", "JPG", "JPEG"]),
        schema_entry("m2z6rkzgj", "Priority", "bool", True),
        schema_entry("2kbsjrx1y", "Reviewers", "array", True),
        schema_entry("bzti690ga", "Metadata", "object", True),
        schema_entry("k3ayfjyh7", "Due Date", "date", False),
        schema_entry("auqgnzk8d", "Supporting Documents", "array_files", True, SUPPORTING_TYPES),
    )
}
