from services.common.migrate import run_env
from services.common.models import AuditChainBase, MessagingBase
from services.roster.adapters.orm import Base

run_env([Base.metadata, MessagingBase.metadata, AuditChainBase.metadata])
