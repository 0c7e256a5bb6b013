"""xueji services: one package per campus department, plus `common` mechanics."""
