from services.presence.service import build
from shared.service import run_service

run_service(build, "presence")
