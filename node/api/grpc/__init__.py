"""Thin gRPC servicers: protobuf <-> domain calls, errors -> rich status."""
