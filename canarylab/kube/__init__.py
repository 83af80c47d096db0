"""The real cluster behind the engine's ports, with kr8s (async).

- :mod:`canarylab.kube.cluster` - ``KubeCluster``, the Cluster port over kr8s (retries, watches, events);
- :mod:`canarylab.kube.objects` - kr8s classes for Canary, MetricTemplate, TrafficSplit, HTTPRoute;
- :mod:`canarylab.kube.proxy` - in-cluster URLs through the API server's service proxy;
- :mod:`canarylab.kube.config` - which context, and the safety rule for contexts canarylab did not create;
- :mod:`canarylab.kube.lab` - ``KubeLab``, the Lab the dashboard drives.
"""
