"""Generated from proto/raftlog/v1 by `make proto`; do not edit."""
