"""Chaos Toolkit activities for the image-typo benchmark.

chaostoolkit-kubernetes has no action that changes a container image and no
probe that waits for a pod's waiting reason, so these fill the gap the way a
Chaos Toolkit user would: plain Python functions on the same Kubernetes
client chaosk8s uses (chaosk8s.create_k8s_api_client), watch-based like
chaosk8s's own deployment probes, so the comparison with breakfix is between
two watch-based harnesses, not a watch and a polling loop.
"""

from chaoslib.exceptions import ActivityFailed
from chaosk8s import create_k8s_api_client
from kubernetes import client, watch

__all__ = ["set_image", "wait_for_waiting_reason", "wait_for_rollout"]


def set_image(name: str, ns: str, container: str, image: str, secrets=None) -> str:
    """Patch one container's image in a Deployment (what the typo does)."""
    apps = client.AppsV1Api(create_k8s_api_client(secrets))
    body = {"spec": {"template": {"spec": {"containers": [{"name": container, "image": image}]}}}}
    apps.patch_namespaced_deployment(name, ns, body)
    return image


def wait_for_waiting_reason(label_selector: str, ns: str, reasons: list, timeout: int = 90, secrets=None) -> str:
    """Watch the pods until one has a container waiting for one of `reasons`."""
    core = client.CoreV1Api(create_k8s_api_client(secrets))
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, label_selector=label_selector, timeout_seconds=int(timeout)):
        pod = event["object"]
        for cs in (pod.status.container_statuses or []):
            waiting = cs.state.waiting if cs.state else None
            if waiting and waiting.reason in reasons:
                w.stop()
                return f"{waiting.reason} on pod/{pod.metadata.name}"
    raise ActivityFailed(f"no pod matching {label_selector} showed {reasons} within {timeout}s")


def wait_for_rollout(name: str, ns: str, timeout: int = 180, secrets=None) -> bool:
    """Watch the Deployment until its rollout is complete: spec observed and
    every replica updated, ready and available, nothing else left (the same
    rule breakfix's steady state applies)."""
    apps = client.AppsV1Api(create_k8s_api_client(secrets))
    w = watch.Watch()
    for event in w.stream(apps.list_namespaced_deployment, ns, field_selector=f"metadata.name={name}", timeout_seconds=int(timeout)):
        d = event["object"]
        want = d.spec.replicas if d.spec.replicas is not None else 1
        st = d.status
        if (st.observed_generation or 0) >= (d.metadata.generation or 0) and all(
            (v or 0) == want for v in (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas)
        ):
            w.stop()
            return True
    raise ActivityFailed(f"deployment {name} did not finish rolling out within {timeout}s")
