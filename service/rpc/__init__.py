"""The gRPC edge: api.operations.v1.OperationsService, served beside the REST API by the API
process (proto/api/operations/v1/operations.proto; stubs in `gen/`, scripts/grpc_stubs.py)."""
