"""The console is Django's admin site, titled for the platform; apps register their models in their own admin.py.

This module runs last (the console app is last in ``INSTALLED_APPS``): it
makes the admins of third-party models superuser-only. Celery's results and
schedules hold every tenant's task arguments and no tenant column to scope
them by (staff edit their tenant's schedule in ``TenantScheduleAdmin``);
users and groups carry the permissions and the superuser flag, so a staff
user who could edit them could make themselves a superuser.
"""

from django.contrib import admin

from platform_core.analytics.console import analytics_page_register
from platform_core.console.scoping import SuperuserOnlyAdmin

admin.site.site_header = "Behaviour platform console"
admin.site.site_title = "Platform console"
admin.site.index_title = "Tenants, data and models"

SUPERUSER_ONLY_APPS: frozenset[str] = frozenset({"django_celery_results", "django_celery_beat", "auth"})


def superuser_only_register(site: admin.AdminSite, app_labels: frozenset[str]) -> None:
    """Re-register the admins of ``app_labels`` with :class:`SuperuserOnlyAdmin` mixed in first."""
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label not in app_labels or isinstance(model_admin, SuperuserOnlyAdmin):
            continue
        cls = type(model_admin)
        site.unregister(model)
        site.register(model, type(cls.__name__, (SuperuserOnlyAdmin, cls), {"__module__": cls.__module__}))


superuser_only_register(admin.site, SUPERUSER_ONLY_APPS)
analytics_page_register(admin.site)  # the tenant's analytics page (docs/analytics.md)
