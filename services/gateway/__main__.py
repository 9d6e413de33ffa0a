from services.gateway.service import build, create_app
from shared.service import run_service

run_service(build, "gateway", app_factory=create_app)
