from services.common.migrate import run_env
from services.common.models import MessagingBase
from services.common.number_aliases import NumberAliasBase
from services.transfer.adapters.orm import Base

run_env([Base.metadata, MessagingBase.metadata, NumberAliasBase.metadata])
