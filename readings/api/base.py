"""What every read API view shares: who may read, and checked cursor pages."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connections
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAdminUser
from rest_framework.views import APIView

from readings.api.params import WHOLE_NUMBER


class ReadPermission(BasePermission):
    """Logged-in users and token holders; anyone when PUBLIC_DASHBOARD is set.
    Only reads exist: other methods reach the view, which answers 405."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS and settings.PUBLIC_DASHBOARD:
            return True
        return bool(request.user and request.user.is_authenticated)


class ReadOrStaffWritePermission(BasePermission):
    """Reading as for the read API; creating, changing and deleting for staff users."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return ReadPermission().has_permission(request, view)
        return IsAdminUser().has_permission(request, view)


class ReadAPIView(APIView):
    # Token first, so that an anonymous request is told how to authenticate (401).
    authentication_classes = [TokenAuthentication, SessionAuthentication]
    permission_classes = [ReadPermission]


class CheckedCursorPagination(CursorPagination):
    """Cursor pages whose page_size and cursor are checked like every other parameter.

    DRF ignores a page_size it cannot read, and hands the position inside a
    cursor to the database as it is: a forged cursor of a time column made a 500.
    """

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def paginate_queryset(self, queryset, request, view=None):
        self._queryset = queryset
        return super().paginate_queryset(queryset, request, view)

    def get_page_size(self, request):
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        if not WHOLE_NUMBER.fullmatch(text) or int(text) < 1:
            raise ValidationError({self.page_size_query_param: [
                f"Must be a whole number from 1 (more than {self.max_page_size} gives "
                f"{self.max_page_size})."]})
        return min(int(text), self.max_page_size)

    def decode_cursor(self, request):
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            # The position as the database would be handed it (self.ordering is set by now).
            field = self._queryset.model._meta.get_field(self.ordering[0].lstrip("-"))
            try:
                if "\x00" in cursor.position:  # no PostgreSQL text holds one
                    raise ValueError
                field.get_db_prep_value(field.to_python(cursor.position),
                                        connections[self._queryset.db])
            except (DjangoValidationError, ValueError, OverflowError):
                raise NotFound(self.invalid_cursor_message) from None
        return cursor

    def get_schema_operation_parameters(self, view):
        return [
            {"name": self.cursor_query_param, "required": False, "in": "query",
             "description": "The page to return: the `next` or `previous` link of an answer.",
             "schema": {"type": "string"}},
            {"name": self.page_size_query_param, "required": False, "in": "query",
             "description": f"Results per page ({self.page_size} by default; more than "
                            f"{self.max_page_size} gives {self.max_page_size}).",
             "schema": {"type": "integer", "minimum": 1}},
        ]


class TimeCursorPagination(CheckedCursorPagination):
    # The id breaks ties: the readings of one message share its time.
    ordering = ("-time", "-id")


class DeviceCursorPagination(CheckedCursorPagination):
    ordering = "sigfox_id"


class SettingPagination(CheckedCursorPagination):
    ordering = "id"
