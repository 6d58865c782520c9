"""Generated beacon.v1 protobuf and gRPC stubs; regenerate with `make proto-gen`."""
