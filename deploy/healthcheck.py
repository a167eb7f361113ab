#!/opt/raftlog/bin/python
"""Container health check: ask the node's gRPC health service (grpc.health.v1).

    raftlog-healthcheck [HOST:PORT] [SERVICE]

Exits 0 when the service ("" = the whole node) is SERVING, 1 otherwise. The address
defaults to $RAFTLOG_HEALTH_ADDRESS, else 127.0.0.1:9091 (the INTERNAL listener).
Used by the image's HEALTHCHECK and deploy/compose.yaml; Kubernetes uses its native
grpc probe instead.
"""

import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def main(argv: list[str]) -> int:
    address = argv[1] if len(argv) > 1 else os.environ.get("RAFTLOG_HEALTH_ADDRESS", "127.0.0.1:9091")
    service = argv[2] if len(argv) > 2 else ""
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2.0
            )
    except grpc.RpcError as err:
        print(f"{address}: {err.code().name}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
