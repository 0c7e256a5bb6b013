from services.common.migrate import run_env
from services.common.models import MessagingBase
from services.housing.adapters.orm import Base

run_env([Base.metadata, MessagingBase.metadata])
