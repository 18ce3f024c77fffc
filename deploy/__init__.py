"""Deployment: Kubernetes manifests (base, overlays) and the embedded local launcher."""
