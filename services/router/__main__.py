from services.router.service import build
from shared.service import run_service

run_service(build, "router")
