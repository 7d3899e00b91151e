"""The local Redis Cluster the cluster tests share: `store/local_cluster.py` (the demo's too)."""

from store.local_cluster import NODE_TIMEOUT_MS, ClusterNode, RedisCluster, cluster_port, redis_cluster

__all__ = ["NODE_TIMEOUT_MS", "ClusterNode", "RedisCluster", "cluster_port", "redis_cluster"]
