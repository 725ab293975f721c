from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.access import Capability, project_access
from annotation.apis.pagination import paginated
from annotation.apis.serializers import MemberInput, MemberOutput, MemberRoleInput, ProjectInput, ProjectOutput
from annotation.selectors.items import member_for_project, member_list, project_list_for_user
from annotation.services import projects as project_services


class ProjectListCreateApi(APIView):
    @extend_schema(responses=ProjectOutput(many=True))
    def get(self, request: Request) -> Response:
        projects = project_list_for_user(user=request.user)
        return paginated(request, projects, lambda page: ProjectOutput(page, many=True).data, self)

    @extend_schema(request=ProjectInput, responses={201: ProjectOutput})
    def post(self, request: Request) -> Response:
        data = ProjectInput(data=request.data)
        data.is_valid(raise_exception=True)
        project = project_services.project_create(created_by=request.user, **data.validated_data)
        project = project_list_for_user(user=request.user).get(pk=project.pk)
        return Response(ProjectOutput(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    @extend_schema(responses=ProjectOutput)
    def get(self, request: Request, pk: int) -> Response:
        project_access(user=request.user, project_id=pk, capability=Capability.VIEW)
        return Response(ProjectOutput(project_list_for_user(user=request.user).get(pk=pk)).data)

    @extend_schema(request=ProjectInput(partial=True), responses=ProjectOutput)
    def patch(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        data = ProjectInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        project_services.project_update(project=project, **data.validated_data)
        return Response(ProjectOutput(project_list_for_user(user=request.user).get(pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        project_services.project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectMembersApi(APIView):
    @extend_schema(responses=MemberOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        members = member_list(project=project)
        return paginated(request, members, lambda page: MemberOutput(page, many=True).data, self)

    @extend_schema(request=MemberInput, responses={201: MemberOutput})
    def post(self, request: Request, pk: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        data = MemberInput(data=request.data)
        data.is_valid(raise_exception=True)
        membership = project_services.membership_set(project=project, **data.validated_data)
        return Response(MemberOutput(membership).data, status=status.HTTP_201_CREATED)


class ProjectMemberDetailApi(APIView):
    @extend_schema(request=MemberRoleInput, responses=MemberOutput)
    def patch(self, request: Request, pk: int, user_id: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        data = MemberRoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        member = member_for_project(project=project, user_id=user_id)
        membership = project_services.membership_set(
            project=project, username=member.user.username, role=data.validated_data["role"]
        )
        return Response(MemberOutput(membership).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, pk: int, user_id: int) -> Response:
        project = project_access(user=request.user, project_id=pk, capability=Capability.MANAGE).project
        project_services.membership_remove(project=project, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
