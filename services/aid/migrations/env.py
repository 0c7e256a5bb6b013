from services.aid.adapters.orm import Base
from services.common.migrate import run_env
from services.common.models import MessagingBase
from services.common.number_aliases import NumberAliasBase

run_env([Base.metadata, MessagingBase.metadata, NumberAliasBase.metadata])
