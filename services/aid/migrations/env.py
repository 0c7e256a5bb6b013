from services.aid.adapters.orm import Base
from services.common.migrate import run_env
from services.common.models import MessagingBase

run_env([Base.metadata, MessagingBase.metadata])
