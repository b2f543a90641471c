"""The console is Django's admin site, titled for the platform; apps register their models in their own admin.py."""

from django.contrib import admin

admin.site.site_header = "Behaviour platform console"
admin.site.site_title = "Platform console"
admin.site.index_title = "Tenants, data and models"
