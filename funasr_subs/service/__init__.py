"""The HTTP service: Bazarr's whisper-asr-webservice contract, media-server webhooks, health and status."""

from funasr_subs.service.app import ServiceHandle, start_service
from funasr_subs.service.config import ServiceConfig, load_service_config

__all__ = ["ServiceConfig", "ServiceHandle", "load_service_config", "start_service"]
